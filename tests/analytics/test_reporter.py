"""The log reporter: records in, ``[ANALYTICS]`` log events out, worded as documented."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog

from data_collector.analytics.records import FeeMissing, OpportunityClosed, OpportunityOpened
from data_collector.analytics.reporter import LogReporter
from data_collector.cache import QuoteCache
from data_collector.pairs import Pair
from tests.analytics.helpers import SOL, T0, VENUES, make, put
from tests.helpers import Log

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
    assert (alert["size"], alert["profit"]) == (None, None)
    assert alert["opportunity"] == 0.0512 - 0.05
    assert alert["summary"] == (
        "[ANALYTICS] Arbitrage Alert: ETH/BTC - buy GATEIO 0.05, sell MEXC 0.0512 "
        "(Opportunity: 0.0012 BTC, 2.40% gross, 2.15% net, size n/a)"
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
