"""The opportunity tracker over real QuoteCache snapshots: its records, and the log events the
reporter makes of them (captured through structlog)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

import data_collector.analytics as analytics_package
from data_collector.analytics.hub import Analytics
from data_collector.analytics.opportunities import OpportunityTracker
from data_collector.analytics.records import (
    FeeMissing,
    OpportunityClosed,
    OpportunityOpened,
    OpportunityQuote,
)
from data_collector.cache import QuoteCache, Snapshot
from data_collector.pairs import Pair
from tests.analytics.helpers import BTC, FEES, SOL, T0, VENUES, make, put, tick
from tests.helpers import Log, events


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
    # the money: sell 1.9 at 152.00 less Gate's 0.15 %, buy 1.9 at 149.75 plus MEXC's 0.1 %
    net_profit = 1.9 * (152.00 * (1 - 0.0015) - 149.75 * (1 + 0.001))
    assert alert["net_profit"] == pytest.approx(net_profit)
    assert alert["buy_fee_pct"] == pytest.approx(0.1)
    assert alert["sell_fee_pct"] == pytest.approx(0.15)
    assert alert["summary"] == (
        "[ANALYTICS] Arbitrage Alert: SOL/USDT - buy MEXC 149.75, sell GATEIO 152.00 "
        "(gap $2.25 per unit, 1.50% gross, 1.25% net of fees); net profit $3.56 for 1.9 SOL"
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
        "(gap $0.00000066 per unit, "
    )
    assert logs[0]["summary"].endswith("net of fees); net profit $3.14 for 5000000 PEPE")


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
    """Python lines executed inside the analytics package while ``action()`` runs."""
    count = 0
    package = str(Path(analytics_package.__file__).parent)

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return local

    def global_(frame: FrameType, event: str, arg: Any) -> Any:
        return local if frame.f_code.co_filename.startswith(package) else None

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


def test_the_tracker_returns_what_opened_and_closed_as_records() -> None:
    cache = QuoteCache(VENUES, [SOL])
    put(cache, "mexc", SOL, "99.90", "100.00", ask_qty="2")
    put(cache, "gateio", SOL, "102.00", "102.10", bid_qty="3")
    tracker = OpportunityTracker(fees=FEES, arbitrage_threshold=0.005)
    [opened] = tracker.update(cache.snapshot(), T0)
    assert tracker.update(cache.snapshot(), T0 + timedelta(seconds=1)) == []
    put(cache, "gateio", SOL, "100.00", "100.10")
    [closed] = tracker.update(cache.snapshot(), T0 + timedelta(seconds=2))
    at_open = OpportunityQuote(
        at=T0,
        buy_price="100.00",
        sell_price="102.00",
        size="2",
        gross_pct=pytest.approx(2.0),
        net_pct=pytest.approx(1.75),
        # size x (sell net of its fee - buy with its fee), as OpportunityOpened.net_profit
        profit=pytest.approx(2 * (102.0 * (1 - 0.0015) - 100.0 * (1 + 0.001))),
    )
    assert opened == OpportunityOpened(
        pair=SOL,
        buy_exchange="mexc",
        sell_exchange="gateio",
        opened_at=T0,
        buy_price=100.0,
        sell_price=102.0,
        size=2.0,
        gross_pct=pytest.approx(2.0),
        net_pct=pytest.approx(2.0 - 0.25),
        buy_fee_pct=pytest.approx(0.1),
        sell_fee_pct=pytest.approx(0.15),
        quote=at_open,
    )
    assert (opened.opportunity, opened.profit) == (2.0, 4.0)
    assert closed == OpportunityClosed(
        pair=SOL,
        buy_exchange="mexc",
        sell_exchange="gateio",
        opened_at=T0,
        closed_at=T0 + timedelta(seconds=2),
        peak_net_pct=pytest.approx(1.75),
        ticks=2,
        reason="converged",
        open_net_pct=pytest.approx(1.75),
        peak=at_open,  # never beaten: the first tick stays the peak
        last_seen_at=T0 + timedelta(seconds=1),
    )
    assert closed.duration_s == 2.0
    assert tracker.open_count == 0


def test_the_peak_keeps_the_exact_strings_of_its_tick() -> None:
    cache = QuoteCache(VENUES, [SOL])
    put(cache, "mexc", SOL, "99.90", "100.00", ask_qty="2.50")
    put(cache, "gateio", SOL, "102.00", "102.10", bid_qty="3")
    tracker = OpportunityTracker(fees=FEES, arbitrage_threshold=0.005)
    tracker.update(cache.snapshot(), T0)
    put(cache, "gateio", SOL, "104.50", "104.60", bid_qty="1.250")  # the best tick
    tracker.update(cache.snapshot(), T0 + timedelta(seconds=1))
    put(cache, "gateio", SOL, "103.000", "103.10", bid_qty="9")  # lower: not a new peak
    tracker.update(cache.snapshot(), T0 + timedelta(seconds=2))
    [state] = tracker.open_opportunities()
    put(cache, "gateio", SOL, "100.00", "100.10")
    [closed] = tracker.update(cache.snapshot(), T0 + timedelta(seconds=3))
    net = 4.5 - 0.25
    peak = closed.peak
    assert peak is not None
    assert (peak.at, peak.buy_price, peak.sell_price, peak.size) == (
        T0 + timedelta(seconds=1),
        "100.00",
        "104.50",
        "1.250",  # the sell venue's size was the smaller one
    )
    assert (peak.gross_pct, peak.net_pct) == (pytest.approx(4.5), pytest.approx(net))
    assert peak.profit == pytest.approx(1.25 * (104.5 * (1 - 0.0015) - 100.0 * (1 + 0.001)))
    assert closed.peak_net_pct == pytest.approx(net)
    assert closed.open_net_pct == pytest.approx(2.0 - 0.25)
    assert (closed.ticks, closed.last_seen_at) == (3, T0 + timedelta(seconds=2))
    assert state.peak == peak
    assert (state.ticks, state.last_seen_at) == (3, T0 + timedelta(seconds=2))
    assert (state.opened_at, state.open_net_pct) == (T0, pytest.approx(1.75))


def test_close_reasons_tell_converged_from_stale() -> None:
    cache = QuoteCache(VENUES, [SOL, BTC])
    for pair in (SOL, BTC):
        put(cache, "mexc", pair, "99", "100")
        put(cache, "gateio", pair, "102", "103")
    tracker = OpportunityTracker(fees=FEES, arbitrage_threshold=0.005)
    assert len(tracker.update(cache.snapshot(), T0)) == 2
    put(cache, "gateio", SOL, "100", "101")  # prices came together
    cache.mark_not_live(cache.venue_index["gateio"], [1])  # BTC's sell quote lost its feed
    closed = tracker.update(cache.snapshot(), T0 + timedelta(seconds=1))
    assert {(c.pair, c.reason) for c in closed if isinstance(c, OpportunityClosed)} == {
        (SOL, "converged"),
        (BTC, "stale"),
    }


def test_close_all_ends_every_open_opportunity_as_shutdown() -> None:
    cache = QuoteCache(VENUES, [SOL])
    put(cache, "mexc", SOL, "99", "100")
    put(cache, "gateio", SOL, "102", "103")
    tracker = OpportunityTracker(fees=FEES, arbitrage_threshold=0.005)
    tracker.update(cache.snapshot(), T0)
    tracker.update(cache.snapshot(), T0 + timedelta(seconds=1))
    stop = T0 + timedelta(seconds=1.4)
    [closed] = tracker.close_all(stop, "shutdown")
    assert (closed.reason, closed.closed_at, closed.ticks) == ("shutdown", stop, 2)
    assert closed.last_seen_at == T0 + timedelta(seconds=1)
    assert tracker.open_count == 0 and tracker.open_opportunities() == ()
    # the next tick opens it afresh
    [reopened] = tracker.update(cache.snapshot(), T0 + timedelta(seconds=2))
    assert isinstance(reopened, OpportunityOpened)
    assert reopened.opened_at == T0 + timedelta(seconds=2)


def test_an_unknown_size_gives_no_size_and_no_profit() -> None:
    cache = QuoteCache(VENUES, [SOL])
    put(cache, "mexc", SOL, "99", "100")
    put(cache, "gateio", SOL, "102", "103")
    snap = cache.snapshot()
    snap.ask_qty[0, 0] = snap.bid_qty[1, 0] = float("nan")  # sizes the venues did not send
    [opened] = OpportunityTracker(fees=FEES, arbitrage_threshold=0.005).update(snap, T0)
    assert (opened.size, opened.profit) == (None, None)


def test_a_venue_without_a_fee_is_reported_once_and_counts_as_free() -> None:
    cache = QuoteCache(VENUES, [SOL])
    put(cache, "mexc", SOL, "99.90", "100.00")
    put(cache, "gateio", SOL, "100.70", "100.80")  # 0.7 % gross: 0.6 % net with mexc's fee
    tracker = OpportunityTracker(fees={"mexc": 0.001}, arbitrage_threshold=0.005)
    missing, opened = tracker.update(cache.snapshot(), T0)
    assert missing == FeeMissing("gateio")
    assert isinstance(opened, OpportunityOpened) and opened.sell_fee_pct == 0.0
    assert tracker.update(cache.snapshot(), T0 + timedelta(seconds=1)) == []
