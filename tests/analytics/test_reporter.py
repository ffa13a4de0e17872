"""The log reporter: records in, ``[ANALYTICS]`` log events out, worded as documented."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import structlog

from data_collector.analytics.records import FeeMissing, OpportunityClosed, OpportunityOpened
from data_collector.analytics.reporter import VOLUME_LINES_MAX, LogReporter
from data_collector.cache import QuoteCache
from data_collector.pairs import Pair
from tests.analytics.helpers import SOL, T0, VENUES, make, put
from tests.helpers import Log, events

ETH_BTC = Pair("ETH", "BTC")


def opened(**overrides: Any) -> OpportunityOpened:
    fields: dict[str, Any] = {
        "pair": ETH_BTC,
        "buy_exchange": "gateio",
        "sell_exchange": "mexc",
        "opened_at": T0,
        "buy_price": 0.05,
        "sell_price": 0.0512,
        "size": None,
        "gross_pct": 2.4,
        "net_pct": 2.15,
        "buy_fee_pct": 0.15,
        "sell_fee_pct": 0.1,
    }
    return OpportunityOpened(**(fields | overrides))


def test_a_non_dollar_quote_is_worded_in_its_currency(logs: Log) -> None:
    LogReporter().opened(opened())
    [alert] = logs
    assert (alert["event"], alert["log_level"]) == ("arbitrage_alert", "warning")
    assert (alert["size"], alert["profit"], alert["net_profit"]) == (None, None, None)
    assert alert["opportunity"] == 0.0512 - 0.05
    assert alert["summary"] == (
        "[ANALYTICS] Arbitrage Alert: ETH/BTC - buy GATEIO 0.05, sell MEXC 0.0512 "
        "(gap 0.0012 BTC per unit, 2.40% gross, 2.15% net of fees); size unknown: no profit figure"
    )


def test_the_profit_is_money_net_of_both_fees_for_the_size(logs: Log) -> None:
    LogReporter().opened(opened(size=0.5))
    [alert] = logs
    # bought 0.5 at 0.05 plus 0.15 %, sold 0.5 at 0.0512 less 0.1 %: in BTC, the quote
    net_profit = 0.5 * (0.0512 * (1 - 0.001) - 0.05 * (1 + 0.0015))
    assert alert["net_profit"] == pytest.approx(net_profit)
    assert alert["profit"] == pytest.approx(0.5 * 0.0012)  # the gross figure stays as it was
    assert alert["summary"].endswith(
        f"per unit, 2.40% gross, 2.15% net of fees); net profit {net_profit:.6g} BTC for 0.5 ETH"
    )


def test_closed_and_fee_missing_lines(logs: Log) -> None:
    reporter = LogReporter()
    reporter.closed(
        OpportunityClosed(ETH_BTC, "gateio", "mexc", T0, T0 + timedelta(seconds=2.5), 2.5, 3)
    )
    reporter.fee_missing(FeeMissing("okx"))
    closed, fee = logs
    assert {k: closed[k] for k in ("event", "duration_s", "peak_net_pct", "ticks")} == {
        "event": "arbitrage_closed",
        "duration_s": 2.5,
        "peak_net_pct": 2.5,
        "ticks": 3,
    }
    assert closed["summary"] == (
        "[ANALYTICS] Arbitrage Closed: ETH/BTC - buy GATEIO, sell MEXC after 2.5s (peak 2.50% net)"
    )
    assert (fee["event"], fee["log_level"], fee["exchange"]) == (
        "analytics_fee_missing",
        "warning",
        "okx",
    )
    assert fee["summary"] == "[ANALYTICS] No taker fee configured for OKX: using 0"


def test_explicit_logger_is_used() -> None:
    captured: Log = []

    def keep(_: Any, method: str, event: dict[str, Any]) -> str:
        captured.append({**event, "log_level": method})
        return ""

    logger = structlog.wrap_logger(structlog.ReturnLogger(), processors=[keep])
    cache = QuoteCache(VENUES, [SOL])
    put(cache, "mexc", SOL, "99", "100")
    put(cache, "gateio", SOL, "102", "103")
    make(logger=logger).on_tick(cache.snapshot(), T0)
    assert [(e["event"], e["log_level"]) for e in captured] == [("arbitrage_alert", "warning")]


def test_many_volume_changes_are_one_line_with_the_lowest_and_the_full_list(logs: Log) -> None:
    pairs = [Pair(f"C{i}", "USDT") for i in range(8)]
    cache = QuoteCache(VENUES, pairs)
    for i, pair in enumerate(pairs):  # MEXC's bids hold $100, $200, ... $800: all below $1,000
        put(cache, "mexc", pair, "100", "101", bid_qty=str(i + 1), ask_qty="50")
        put(cache, "gateio", pair, "100", "101", bid_qty="50", ask_qty="50")
    analytics = make(volume_threshold=1000.0)
    analytics.summarize(cache.snapshot())
    assert events(logs, "volume_alert") == []
    [line] = events(logs, "volume_summary")
    assert (line["log_level"], line["alerts"], line["recovered"]) == ("warning", 8, 0)
    lowest = [(c["symbol"], c["exchange"], c["side"], c["notional_usd"]) for c in line["lowest"]]
    assert lowest == [
        ("C0/USDT", "mexc", "bid", 100.0),
        ("C1/USDT", "mexc", "bid", 200.0),
        ("C2/USDT", "mexc", "bid", 300.0),
    ]
    assert sorted(c["symbol"] for c in line["changes"]) == [str(p) for p in pairs]
    assert all(c["low"] and c["threshold_usd"] == 1000.0 for c in line["changes"])
    assert line["summary"] == (
        "[ANALYTICS] Volume: 8 book sides fell below $1,000.00; lowest: C0/USDT on MEXC bid "
        "$100.00, C1/USDT on MEXC bid $200.00, C2/USDT on MEXC bid $300.00"
    )

    logs.clear()
    for pair in pairs[:VOLUME_LINES_MAX]:  # a handful recover: one line each, as always
        put(cache, "mexc", pair, "100", "101", bid_qty="20", ask_qty="50")
    analytics.summarize(cache.snapshot())
    assert len(events(logs, "volume_recovered")) == VOLUME_LINES_MAX
    assert events(logs, "volume_summary") == []


def test_a_summary_of_recoveries_only_is_calm(logs: Log) -> None:
    pairs = [Pair(f"C{i}", "USDT") for i in range(6)]
    cache = QuoteCache(VENUES, pairs)
    for pair in pairs:
        put(cache, "mexc", pair, "100", "101", bid_qty="1", ask_qty="50")
    analytics = make(volume_threshold=1000.0)
    analytics.summarize(cache.snapshot())
    logs.clear()
    for pair in pairs:
        put(cache, "mexc", pair, "100", "101", bid_qty="20", ask_qty="50")
    analytics.summarize(cache.snapshot())
    [line] = events(logs, "volume_summary")
    assert (line["log_level"], line["alerts"], line["recovered"], line["lowest"]) == (
        "info",
        0,
        6,
        [],
    )
    assert line["summary"] == "[ANALYTICS] Volume: 6 book sides recovered above $1,000.00"
