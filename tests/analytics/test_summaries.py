"""Market summaries over real QuoteCache snapshots, as the reporter logs them."""

from __future__ import annotations

import pytest

from data_collector.cache import QuoteCache
from data_collector.pairs import Pair
from tests.analytics.helpers import BTC, ETH, SOL, T0, VENUES, make, put
from tests.helpers import Log, events


def spread_cache() -> QuoteCache:
    cache = QuoteCache(VENUES, [SOL, BTC, ETH])
    put(cache, "mexc", SOL, "99", "101")  # spread 2 %, mid 100
    put(cache, "gateio", SOL, "100", "101")  # spread 1/100.5, mid 100.5
    put(cache, "mexc", BTC, "999", "1001")  # spread 0.2 %, mid 1000
    put(cache, "gateio", BTC, "999.5", "1000.5")  # spread 0.1 %, mid 1000
    put(cache, "mexc", ETH, "49", "51")  # spread 4 %, mexc only
    return cache


def test_spread_analysis_and_spread_alerts(logs: Log) -> None:
    make(spread_alert_threshold=0.015).summarize(spread_cache().snapshot())
    [analysis] = events(logs, "spread_analysis")
    assert analysis["log_level"] == "info"
    assert analysis["pairs"] == 3
    mexc = (0.02 + 0.002 + 0.04) / 3 * 100
    gate = (1 / 100.5 + 0.001) / 2 * 100
    assert analysis["avg_spread_pct"] == {
        "mexc": pytest.approx(mexc),
        "gateio": pytest.approx(gate),
    }
    assert analysis["max_spread"] == {"symbol": "ETH/USDT", "venue": "mexc", "pct": 4.0}
    cross = (0.5 / 100.25 + 0.0) / 2 * 100
    assert analysis["avg_cross_venue_diff_pct"] == pytest.approx(cross)
    spreads = analysis["spreads"]  # each venue's spread per pair and the difference between them
    assert spreads["SOL/USDT"] == {
        "mexc": pytest.approx(2.0),
        "gateio": pytest.approx(100 / 100.5),
        "diff_pct": pytest.approx(0.5 / 100.25 * 100),
    }
    assert spreads["BTC/USDT"]["diff_pct"] == pytest.approx(0.0)
    assert spreads["ETH/USDT"] == {"mexc": pytest.approx(4.0), "gateio": None, "diff_pct": None}
    assert analysis["summary"] == (
        f"[ANALYTICS] Spread Analysis: 3 pairs, avg spread MEXC {mexc:.4f}%, "
        f"GATEIO {gate:.4f}%, avg cross-venue diff {cross:.4f}%"
    )
    alerts = events(logs, "spread_alert")
    assert {(e["symbol"], e["exchange"]) for e in alerts} == {
        ("SOL/USDT", "mexc"),
        ("ETH/USDT", "mexc"),
    }
    sol = next(e for e in alerts if e["symbol"] == "SOL/USDT")
    assert sol["log_level"] == "warning"
    assert (sol["spread_pct"], sol["bid"], sol["ask"]) == (2.0, 99.0, 101.0)
    assert sol["summary"] == (
        "[ANALYTICS] Spread Alert: SOL/USDT on MEXC - spread 2.000% (bid 99.00, ask 101.00)"
    )


def test_unusable_quotes_are_left_out_of_spreads(logs: Log) -> None:
    cache = spread_cache()
    cache.mark_not_live(cache.venue_index["mexc"], [2])  # the 4 % ETH spread
    make(spread_alert_threshold=0.03).summarize(cache.snapshot())
    [analysis] = events(logs, "spread_analysis")
    assert analysis["pairs"] == 2
    assert analysis["max_spread"]["symbol"] == "SOL/USDT"
    assert events(logs, "spread_alert") == []


def test_volume_alert_on_transition_only_then_recovery(logs: Log) -> None:
    cache = QuoteCache(VENUES, [SOL])
    put(cache, "mexc", SOL, "100", "101", bid_qty="5", ask_qty="20")  # bid $500, ask $2020
    put(cache, "gateio", SOL, "100", "101", bid_qty="50", ask_qty="50")
    a = make(volume_threshold=1000.0)
    a.summarize(cache.snapshot())
    a.summarize(cache.snapshot())
    [alert] = events(logs, "volume_alert")
    assert alert["log_level"] == "warning"
    assert (alert["symbol"], alert["exchange"], alert["side"]) == ("SOL/USDT", "mexc", "bid")
    assert (alert["notional_usd"], alert["threshold_usd"]) == (500.0, 1000.0)
    assert alert["summary"] == (
        "[ANALYTICS] Volume Alert: SOL/USDT on MEXC - bid notional $500.00 below $1,000.00"
    )
    assert events(logs, "volume_recovered") == []

    cache.mark_not_live(0, [0])  # unknown is not recovered
    a.summarize(cache.snapshot())
    assert events(logs, "volume_recovered") == []

    put(cache, "mexc", SOL, "100", "101", bid_qty="12", ask_qty="20")
    a.summarize(cache.snapshot())
    a.summarize(cache.snapshot())
    [recovered] = events(logs, "volume_recovered")
    assert recovered["log_level"] == "info"
    assert (recovered["exchange"], recovered["side"], recovered["notional_usd"]) == (
        "mexc",
        "bid",
        1200.0,
    )
    assert len(events(logs, "volume_alert")) == 1


def test_volume_converts_other_quote_currencies(logs: Log) -> None:
    eth_btc, xyz_eur = Pair("ETH", "BTC"), Pair("XYZ", "EUR")
    cache = QuoteCache(VENUES, [eth_btc, BTC, xyz_eur])
    put(cache, "gateio", BTC, "59999", "60001", bid_qty="1", ask_qty="1")  # mid 60000
    # ETH/BTC on mexc converts at gateio's BTC/USDT (the only venue quoting it)
    put(cache, "mexc", eth_btc, "0.05", "0.051", bid_qty="0.1", ask_qty="1")
    put(cache, "mexc", xyz_eur, "0.001", "0.002", bid_qty="1", ask_qty="1")  # no EUR/USDT
    make(volume_threshold=1000.0).summarize(cache.snapshot())
    [alert] = events(logs, "volume_alert")
    assert (alert["symbol"], alert["exchange"], alert["side"]) == ("ETH/BTC", "mexc", "bid")
    assert alert["notional_usd"] == pytest.approx(0.05 * 0.1 * 60000)


def test_market_health_counts(logs: Log) -> None:
    cache = spread_cache()  # SOL and BTC on both venues, ETH on mexc only
    put(cache, "gateio", SOL, "102", "103")  # crossed against mexc's ask 101
    a = make()
    a.on_tick(cache.snapshot(), T0)
    a.summarize(cache.snapshot())
    [health] = events(logs, "market_health")
    assert health["log_level"] == "info"
    assert (health["pairs_live"], health["pairs_total"]) == (2, 3)
    assert health["health_pct"] == pytest.approx(200 / 3)
    avg = (0.02 + 1 / 102.5 + 0.002 + 0.001 + 0.04) / 5 * 100
    assert health["avg_spread_pct"] == pytest.approx(avg)
    assert health["open_opportunities"] == 1
    assert health["summary"] == (
        f"[ANALYTICS] Market Health: 2/3 pairs live on 2+ venues (66.7%), "
        f"avg spread {avg:.4f}%, 1 open opportunity"
    )


def test_a_summary_is_returned_as_records_too() -> None:
    cache = spread_cache()
    summary = make(spread_alert_threshold=0.03, volume_threshold=10_000.0).summarize(
        cache.snapshot()
    )
    assert summary.spread_analysis.pairs == 3
    widest = summary.spread_analysis.widest
    assert widest is not None and (widest.pair, widest.exchange) == (ETH, "mexc")
    assert [(a.pair, a.exchange) for a in summary.spread_alerts] == [(ETH, "mexc")]
    # below $10,000 on every side but BTC's asks ($10,010 and $10,005): each a change to low
    low = {(c.pair, c.exchange, c.side) for c in summary.volume_changes if c.low}
    assert len(low) == len(summary.volume_changes) == 8
    assert (BTC, "mexc", "ask") not in low and (BTC, "mexc", "bid") in low
    health = summary.market_health
    assert (health.pairs_live, health.pairs_total, health.open_opportunities) == (2, 3, 0)
