"""Analytics over real QuoteCache snapshots, logs captured through structlog."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from data_collector import analytics as analytics_module
from data_collector.analytics import Analytics, format_price
from data_collector.cache import Outcome, QuoteCache, Snapshot, VenueStats
from data_collector.pairs import Pair
from data_collector.venues.base import QuoteUpdate

VENUES = ["mexc", "gateio"]
SOL = Pair("SOL", "USDT")
BTC = Pair("BTC", "USDT")
ETH = Pair("ETH", "USDT")
T0 = datetime(2024, 1, 1, tzinfo=UTC)
FEES = {"mexc": 0.001, "gateio": 0.0015}

Log = list[dict[str, Any]]


@pytest.fixture
def logs() -> Iterator[Log]:
    with capture_logs() as captured:
        yield captured


def make(**overrides: Any) -> Analytics:
    """Built inside the test body, so the default logger is bound under capture_logs."""
    kwargs: dict[str, Any] = {
        "fees": FEES,
        "arbitrage_threshold": 0.005,
        "volume_threshold": 0.0,
        "spread_alert_threshold": 1.0,
    }
    kwargs.update(overrides)
    return Analytics(**kwargs)


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


def events(logs: Log, name: str) -> Log:
    return [entry for entry in logs if entry["event"] == name]


# ---------------------------------------------------------------------------- arbitrage


def test_gap_over_several_ticks_alerts_once_and_closes_once(logs: Log) -> None:
    cache = QuoteCache(VENUES, [SOL, BTC])
    put(cache, "mexc", SOL, "149.70", "149.75", ask_qty="1.9")
    put(cache, "gateio", SOL, "152.00", "152.10", bid_qty="5")
    put(cache, "mexc", BTC, "60000", "60001")
    put(cache, "gateio", BTC, "60000.5", "60001.5")
    a = make()

    tick(a, cache, 0)
    tick(a, cache, 1)
    put(cache, "gateio", SOL, "153.00", "153.10", bid_qty="5")  # wider: the peak
    tick(a, cache, 2)
    put(cache, "gateio", SOL, "152.00", "152.10", bid_qty="5")  # narrower again, still open
    tick(a, cache, 3)
    assert a.open_opportunities == 1
    put(cache, "mexc", SOL, "151.90", "152.05")  # ask above the other bid: gone
    tick(a, cache, 4)

    assert [e["event"] for e in logs] == ["arbitrage_alert", "arbitrage_closed"]
    alert, closed = logs
    gross = (152.00 - 149.75) / 149.75
    assert alert["log_level"] == "warning"
    assert alert["symbol"] == "SOL/USDT"
    assert (alert["buy_exchange"], alert["sell_exchange"]) == ("mexc", "gateio")
    assert (alert["buy_price"], alert["sell_price"]) == (149.75, 152.00)
    assert alert["opportunity"] == pytest.approx(2.25)
    assert alert["gross_pct"] == pytest.approx(gross * 100)
    assert alert["net_pct"] == pytest.approx((gross - 0.001 - 0.0015) * 100)
    assert alert["size"] == 1.9
    assert alert["profit"] == pytest.approx(1.9 * 2.25)
    assert alert["buy_fee_pct"] == pytest.approx(0.1)
    assert alert["sell_fee_pct"] == pytest.approx(0.15)
    assert alert["summary"] == (
        "[ANALYTICS] Arbitrage Alert: SOL/USDT - buy MEXC 149.75, sell GATEIO 152.00 "
        "(Opportunity: $2.25, 1.50% gross, 1.25% net, size 1.9)"
    )
    peak = ((153.00 - 149.75) / 149.75 - 0.0025) * 100
    assert closed["log_level"] == "info"
    assert closed["symbol"] == "SOL/USDT"
    assert (closed["buy_exchange"], closed["sell_exchange"]) == ("mexc", "gateio")
    assert closed["duration_s"] == 4.0
    assert closed["ticks"] == 4
    assert closed["peak_net_pct"] == pytest.approx(peak)
    assert closed["summary"] == (
        f"[ANALYTICS] Arbitrage Closed: SOL/USDT - buy MEXC, sell GATEIO after 4.0s "
        f"(peak {peak:.2f}% net)"
    )
    assert a.open_opportunities == 0


def test_fees_decide_when_gross_passes_but_net_does_not(logs: Log) -> None:
    cache = QuoteCache(VENUES, [SOL])
    put(cache, "mexc", SOL, "99.90", "100.00")
    put(cache, "gateio", SOL, "100.60", "100.70")  # 0.6 % gross, 0.35 % net with FEES
    make().on_tick(cache.snapshot(), T0)
    assert logs == []
    make(fees={"mexc": 0.0, "gateio": 0.0}).on_tick(cache.snapshot(), T0)
    assert [e["event"] for e in logs] == ["arbitrage_alert"]


def test_uncrossed_pairs_log_nothing(logs: Log) -> None:
    cache = QuoteCache(VENUES, [SOL, BTC])
    put(cache, "mexc", SOL, "149.90", "150.00")
    put(cache, "gateio", SOL, "149.95", "150.05")
    put(cache, "mexc", BTC, "60000", "60001")
    put(cache, "gateio", BTC, "60000", "60001")  # equal books: zero gross, negative net
    a = make(arbitrage_threshold=0.0)
    for second in range(3):
        tick(a, cache, second)
    assert logs == []
    assert a.open_opportunities == 0


def test_a_venue_never_trades_against_itself(logs: Log) -> None:
    cache = QuoteCache(VENUES, [SOL])
    put(cache, "mexc", SOL, "100", "100")  # locked book: zero gross on the same venue
    put(cache, "gateio", SOL, "99", "101")
    make(fees={"mexc": 0.0, "gateio": 0.0}, arbitrage_threshold=0.0).on_tick(cache.snapshot(), T0)
    assert logs == []


def test_quote_that_stops_being_usable_closes_the_opportunity(logs: Log) -> None:
    cache = QuoteCache(VENUES, [SOL])
    put(cache, "mexc", SOL, "99", "100")
    put(cache, "gateio", SOL, "102", "103")
    a = make()
    tick(a, cache, 0)
    cache.mark_not_live(cache.venue_index["gateio"], [0])  # prices kept, still crossed
    tick(a, cache, 1.5)
    tick(a, cache, 2)
    assert [e["event"] for e in logs] == ["arbitrage_alert", "arbitrage_closed"]
    assert logs[1]["duration_s"] == 1.5
    assert a.open_opportunities == 0


def test_unusable_quotes_never_open(logs: Log) -> None:
    cache = QuoteCache(VENUES, [SOL, BTC])
    put(cache, "mexc", SOL, "99", "100")
    put(cache, "gateio", SOL, "102", "103")
    cache.mark_not_live(cache.venue_index["mexc"], [0])
    put(cache, "mexc", BTC, "99", "100")
    put(cache, "gateio", BTC, "102", None)  # one-sided: not usable either
    make().on_tick(cache.snapshot(), T0)
    assert logs == []


def test_reverse_direction_is_detected(logs: Log) -> None:
    cache = QuoteCache(VENUES, [SOL])
    put(cache, "mexc", SOL, "102", "103", bid_qty="4")
    put(cache, "gateio", SOL, "99", "100", ask_qty="7")
    make().on_tick(cache.snapshot(), T0)
    [alert] = events(logs, "arbitrage_alert")
    assert (alert["buy_exchange"], alert["sell_exchange"]) == ("gateio", "mexc")
    assert (alert["buy_price"], alert["sell_price"], alert["size"]) == (100.0, 102.0, 4.0)
    assert alert["profit"] == pytest.approx(8.0)
    assert alert["buy_fee_pct"] == pytest.approx(0.15)


def test_reopening_after_close_alerts_again(logs: Log) -> None:
    cache = QuoteCache(VENUES, [SOL])
    put(cache, "gateio", SOL, "102", "103")
    a = make()
    for second, ask in enumerate(["100", "100", "102.5", "100", "100", "102.5"]):
        put(cache, "mexc", SOL, "99", ask)
        tick(a, cache, second)
    assert [e["event"] for e in logs] == ["arbitrage_alert", "arbitrage_closed"] * 2
    assert [e["duration_s"] for e in events(logs, "arbitrage_closed")] == [2.0, 2.0]


def test_changed_pair_list_closes_what_was_open(logs: Log) -> None:
    first = QuoteCache(VENUES, [SOL])
    put(first, "mexc", SOL, "99", "100")
    put(first, "gateio", SOL, "102", "103")
    second = QuoteCache(VENUES, [BTC, SOL])
    put(second, "mexc", BTC, "99", "100")
    a = make()
    a.on_tick(first.snapshot(), T0)
    a.on_tick(second.snapshot(), T0 + timedelta(seconds=1))
    assert [e["event"] for e in logs] == ["arbitrage_alert", "arbitrage_closed"]
    assert logs[1]["symbol"] == "SOL/USDT"
    assert a.open_opportunities == 0


def test_meme_coin_prices_keep_their_digits(logs: Log) -> None:
    pepe = Pair("PEPE", "USDT")
    cache = QuoteCache(VENUES, [pepe])
    put(cache, "mexc", pepe, "0.00001200", "0.00001234", ask_qty="5000000")
    put(cache, "gateio", pepe, "0.00001300", "0.00001310", bid_qty="9000000")
    make().on_tick(cache.snapshot(), T0)
    assert logs[0]["summary"].startswith(
        "[ANALYTICS] Arbitrage Alert: PEPE/USDT - buy MEXC 0.00001234, sell GATEIO 0.000013 "
        "(Opportunity: $0.00000066, "
    )
    assert logs[0]["summary"].endswith("net, size 5000000)")


def test_format_price() -> None:
    assert format_price(149.75) == "149.75"
    assert format_price(152.0) == "152.00"
    assert format_price(65000.1 - 65000.0) == "0.10"
    assert format_price(123456789.0) == "123456789.00"
    assert format_price(0.0000012345678912) == "0.0000012345679"


class CountingPairs(tuple[Pair, ...]):
    """A pair tuple that counts element reads made from Python code."""

    reads = 0

    def __getitem__(self, index: Any) -> Any:
        CountingPairs.reads += 1
        return super().__getitem__(index)

    def __iter__(self) -> Iterator[Pair]:
        CountingPairs.reads += len(self)
        return super().__iter__()


def crossed_snapshot(n_pairs: int, crossed: list[int], *, open_: bool) -> Snapshot:
    pairs = [Pair(f"C{i}", "USDT") for i in range(n_pairs)]
    cache = QuoteCache(VENUES, pairs)
    for p, pair in enumerate(pairs):
        put(cache, "mexc", pair, "99", "100")
        high = open_ and p in crossed
        put(cache, "gateio", pair, "102" if high else "99.5", "103" if high else "100.5")
    return dataclasses.replace(cache.snapshot(), pairs=CountingPairs(pairs))


def lines_run_in_analytics(action: Any) -> int:
    """Python lines executed inside analytics.py while ``action()`` runs."""
    count = 0
    target = analytics_module.__file__

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return local

    def global_(frame: FrameType, event: str, arg: Any) -> Any:
        return local if frame.f_code.co_filename == target else None

    sys.settrace(global_)
    try:
        action()
    finally:
        sys.settrace(None)
    return count


def test_two_thousand_pairs_without_per_pair_python_work(logs: Log) -> None:
    crossed = [7, 1000, 1999]
    lines = []
    for n_pairs, hits in ((20, [1, 7, 19]), (2000, crossed)):
        logs.clear()
        CountingPairs.reads = 0
        opened = crossed_snapshot(n_pairs, hits, open_=True)
        shut = crossed_snapshot(n_pairs, hits, open_=False)
        a = make()

        def run(a: Analytics = a, opened: Snapshot = opened, shut: Snapshot = shut) -> None:
            a.on_tick(opened, T0)
            a.on_tick(opened, T0 + timedelta(seconds=1))
            a.on_tick(shut, T0 + timedelta(seconds=2))

        lines.append(lines_run_in_analytics(run))
        assert [e["symbol"] for e in events(logs, "arbitrage_alert")] == [
            f"C{p}/USDT" for p in hits
        ]
        assert len(events(logs, "arbitrage_closed")) == 3
        assert CountingPairs.reads == 6  # one read per opening and per closing, no scans
    assert lines[0] == lines[1]  # the Python work does not grow with the pair count


# ---------------------------------------------------------------------------- summaries


def spread_cache() -> QuoteCache:
    cache = QuoteCache(VENUES, [SOL, BTC, ETH])
    put(cache, "mexc", SOL, "99", "101")  # spread 2 %, mid 100
    put(cache, "gateio", SOL, "100", "101")  # spread 1/100.5, mid 100.5
    put(cache, "mexc", BTC, "999", "1001")  # spread 0.2 %, mid 1000
    put(cache, "gateio", BTC, "999.5", "1000.5")  # spread 0.1 %, mid 1000
    put(cache, "mexc", ETH, "49", "51")  # spread 4 %, mexc only
    return cache


def summarize(a: Analytics, snap: Snapshot, now_ns: int = 10**18) -> None:
    a.summarize(snap, {v: VenueStats() for v in VENUES}, {v: (1, 1) for v in VENUES}, now_ns)


def test_spread_analysis_and_spread_alerts(logs: Log) -> None:
    summarize(make(spread_alert_threshold=0.015), spread_cache().snapshot())
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
    summarize(make(spread_alert_threshold=0.03), cache.snapshot())
    [analysis] = events(logs, "spread_analysis")
    assert analysis["pairs"] == 2
    assert analysis["max_spread"]["symbol"] == "SOL/USDT"
    assert events(logs, "spread_alert") == []


def test_volume_alert_on_transition_only_then_recovery(logs: Log) -> None:
    cache = QuoteCache(VENUES, [SOL])
    put(cache, "mexc", SOL, "100", "101", bid_qty="5", ask_qty="20")  # bid $500, ask $2020
    put(cache, "gateio", SOL, "100", "101", bid_qty="50", ask_qty="50")
    a = make(volume_threshold=1000.0)
    summarize(a, cache.snapshot())
    summarize(a, cache.snapshot())
    [alert] = events(logs, "volume_alert")
    assert alert["log_level"] == "warning"
    assert (alert["symbol"], alert["exchange"], alert["side"]) == ("SOL/USDT", "mexc", "bid")
    assert (alert["notional_usd"], alert["threshold_usd"]) == (500.0, 1000.0)
    assert alert["summary"] == (
        "[ANALYTICS] Volume Alert: SOL/USDT on MEXC - bid notional $500.00 below $1,000.00"
    )
    assert events(logs, "volume_recovered") == []

    cache.mark_not_live(0, [0])  # unknown is not recovered
    summarize(a, cache.snapshot())
    assert events(logs, "volume_recovered") == []

    put(cache, "mexc", SOL, "100", "101", bid_qty="12", ask_qty="20")
    summarize(a, cache.snapshot())
    summarize(a, cache.snapshot())
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
    summarize(make(volume_threshold=1000.0), cache.snapshot())
    [alert] = events(logs, "volume_alert")
    assert (alert["symbol"], alert["exchange"], alert["side"]) == ("ETH/BTC", "mexc", "bid")
    assert alert["notional_usd"] == pytest.approx(0.05 * 0.1 * 60000)


def test_market_health_counts(logs: Log) -> None:
    cache = spread_cache()  # SOL and BTC on both venues, ETH on mexc only
    put(cache, "gateio", SOL, "102", "103")  # crossed against mexc's ask 101
    a = make()
    a.on_tick(cache.snapshot(), T0)
    summarize(a, cache.snapshot())
    [health] = events(logs, "market_health")
    assert health["log_level"] == "info"
    assert (health["pairs_live"], health["pairs_total"]) == (2, 3)
    assert health["health_pct"] == pytest.approx(200 / 3)
    avg = (0.02 + 1 / 102.5 + 0.002 + 0.001 + 0.04) / 5 * 100
    assert health["avg_spread_pct"] == pytest.approx(avg)
    assert health["open_opportunities"] == 1
    assert health["summary"] == (
        f"[ANALYTICS] Market Health: 2/3 pairs live on 2+ venues (66.7%), "
        f"avg spread {avg:.4f}%, 1 open opportunities"
    )


def test_connection_status_rates_from_deltas(logs: Log) -> None:
    snap = QuoteCache(VENUES, [SOL]).snapshot()
    a = make()
    t0 = 1_700_000_000 * 10**9
    mexc = VenueStats(updates=100, reconnects=2, parse_errors=3, last_message_ns=t0 - 10**8)
    mexc.dropped_stale, mexc.dropped_crossed, mexc.dropped_invalid = 1, 2, 3
    mexc.dropped_unknown = 4
    stats = {"mexc": mexc, "gateio": VenueStats()}
    connections = {"mexc": (2, 2), "gateio": (0, 1)}

    a.summarize(snap, stats, connections, t0)
    first = {e["exchange"]: e for e in events(logs, "connection_status")}
    assert first["mexc"]["updates_per_min"] is None
    assert first["mexc"]["last_message_age_s"] == pytest.approx(0.1)
    assert first["mexc"]["summary"] == (
        "[CONNECTION] MEXC: 2/2 connections up, n/a updates/min, 2 reconnects, "
        "last message 0.1s ago"
    )
    assert first["gateio"]["last_message_age_s"] is None

    logs.clear()
    mexc.updates = 1100
    mexc.last_message_ns = t0 + 30 * 10**9
    a.summarize(snap, stats, connections, t0 + 30 * 10**9)
    status = {e["exchange"]: e for e in events(logs, "connection_status")}
    assert set(status) == {"mexc", "gateio"}
    m = status["mexc"]
    assert m["log_level"] == "info"
    assert m["updates_per_min"] == pytest.approx(2000.0)
    assert (m["connections_up"], m["connections_expected"]) == (2, 2)
    assert (m["reconnects"], m["parse_errors"], m["dropped"]) == (2, 3, 10)
    assert m["last_message_age_s"] == 0.0
    assert m["summary"] == (
        "[CONNECTION] MEXC: 2/2 connections up, 2000 updates/min, 2 reconnects, "
        "last message 0.0s ago"
    )
    g = status["gateio"]
    assert (g["updates_per_min"], g["connections_up"], g["connections_expected"]) == (0.0, 0, 1)
    assert g["summary"] == (
        "[CONNECTION] GATEIO: 0/1 connections up, 0 updates/min, 0 reconnects, no message yet"
    )


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
