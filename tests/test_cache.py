"""Latest-quote cache: what is accepted, what is dropped, and liveness."""

from __future__ import annotations

import math

import numpy as np

from data_collector.cache import Outcome, QuoteCache, VenueStats
from data_collector.pairs import Pair
from data_collector.venues.base import QuoteUpdate

BTC, ETH = Pair("BTC", "USDT"), Pair("ETH", "USDT")


def q(bid: str | None, ask: str | None, seq: int = -1, bq: str = "1", aq: str = "2") -> QuoteUpdate:
    return QuoteUpdate("X", bid, bq if bid else None, ask, aq if ask else None, 1000, seq)


def make() -> QuoteCache:
    return QuoteCache(["mexc", "gateio"], [BTC, ETH])


def test_accepts_and_keeps_exact_strings() -> None:
    cache = make()
    update = q("0.000000001234", "0.000000001235", bq="123456789.12345678")
    assert cache.apply(0, 1, update, 42) is Outcome.ACCEPTED
    snap = cache.snapshot()
    assert snap.quote(0, 1) is update
    assert snap.bid[0, 1] == 1.234e-9 and snap.bid_qty[0, 1] == 123456789.12345678
    assert snap.receive_time_ns[0, 1] == 42 and snap.exchange_time_ms[0, 1] == 1000
    assert snap.usable.tolist() == [[False, True], [False, False]]


def test_sequence_must_rise() -> None:
    cache = make()
    assert cache.apply(0, 0, q("1", "2", seq=10), 1) is Outcome.ACCEPTED
    assert cache.apply(0, 0, q("1.5", "2", seq=9), 3) is Outcome.STALE
    assert cache.snapshot().bid[0, 0] == 1.0
    assert cache.apply(0, 0, q("1.5", "2", seq=11), 4) is Outcome.ACCEPTED
    # no sequence from the venue: every update is taken in arrival order
    assert cache.apply(1, 0, q("1", "2"), 1) is Outcome.ACCEPTED
    assert cache.apply(1, 0, q("0.9", "2"), 2) is Outcome.ACCEPTED


def test_the_same_sequence_again_is_a_repeat_that_keeps_the_pair_alive() -> None:
    cache = make()
    first = q("1", "2", seq=10)
    assert cache.apply(0, 0, first, 100) is Outcome.ACCEPTED
    assert cache.last_seen_ns()[0, 0] == 100
    # Bybit pushes an unchanged book again with the same u every 3 s
    assert cache.apply(0, 0, q("1", "2", seq=10), 3_000_100) is Outcome.REPEAT
    snap = cache.snapshot()
    assert snap.quote(0, 0) is first and snap.usable[0, 0]  # the quote stays, still live
    assert snap.receive_time_ns[0, 0] == 100  # the quote's own time is not touched...
    assert cache.last_seen_ns()[0, 0] == 3_000_100  # ...but the pair was seen alive
    assert cache.apply(0, 0, q("1.5", "2", seq=9), 3_000_200) is Outcome.STALE
    assert cache.last_seen_ns()[0, 0] == 3_000_100  # out of order proves nothing


def test_a_sequence_restart_replaces_the_quote_though_the_sequence_went_down() -> None:
    cache = make()
    assert cache.apply(0, 0, q("1", "2", seq=18521288), 1) is Outcome.ACCEPTED
    restarted = QuoteUpdate("X", "1.1", "1", "2", "2", 2000, 1, sequence_restart=True)
    assert cache.apply(0, 0, restarted, 2) is Outcome.ACCEPTED
    assert cache.snapshot().quote(0, 0) is restarted
    assert cache.apply(0, 0, q("1.2", "2", seq=1), 3) is Outcome.REPEAT
    assert cache.apply(0, 0, q("1.3", "2", seq=2), 4) is Outcome.ACCEPTED
    # a lower sequence without the restart mark is still out of order
    assert cache.apply(0, 0, q("1.4", "2", seq=1), 5) is Outcome.STALE
    assert cache.snapshot().bid[0, 0] == 1.3


def test_crossed_and_non_positive_and_garbage_are_dropped() -> None:
    cache = make()
    assert cache.apply(0, 0, q("2.1", "2"), 1) is Outcome.CROSSED
    assert cache.apply(0, 0, q("0", "2"), 1) is Outcome.INVALID
    assert cache.apply(0, 0, q("-1", "2"), 1) is Outcome.INVALID
    assert cache.apply(0, 0, q("abc", "2"), 1) is Outcome.INVALID
    assert cache.apply(0, 0, q("1", "inf"), 1) is Outcome.INVALID
    assert cache.apply(0, 0, q("1", "2", bq="-3"), 1) is Outcome.INVALID
    assert cache.apply(0, 0, q("nan", "2"), 1) is Outcome.INVALID
    assert cache.apply(0, 0, q("1", "2", aq="nan"), 1) is Outcome.INVALID
    assert cache.apply(0, 0, q("1", "2", bq="inf"), 1) is Outcome.INVALID
    no_size = QuoteUpdate("X", "1", None, "2", "3", 1000, -1)
    assert cache.apply(0, 0, no_size, 1) is Outcome.INVALID
    assert math.isnan(cache.snapshot().bid[0, 0])
    assert not cache.snapshot().usable.any()
    assert cache.apply(0, 0, q("2", "2"), 1) is Outcome.ACCEPTED  # locked, not crossed


def test_one_sided_is_kept_but_not_usable() -> None:
    cache = make()
    assert cache.apply(0, 0, q(None, "2"), 1) is Outcome.ACCEPTED
    snap = cache.snapshot()
    assert math.isnan(snap.bid[0, 0]) and snap.ask[0, 0] == 2.0
    assert not snap.usable[0, 0]


def test_connection_loss_marks_not_live_until_refreshed() -> None:
    cache = make()
    cache.apply(0, 0, q("1", "2", seq=100), 1)
    cache.apply(0, 1, q("3", "4", seq=100), 1)
    cache.mark_not_live(0, [0])
    snap = cache.snapshot()
    assert snap.usable.tolist()[0] == [False, True]
    assert snap.bid[0, 0] == 1.0  # the old quote is kept, just not trusted
    # the venue may restart its sequence on the new connection
    assert cache.apply(0, 0, q("1.1", "2", seq=5), 2) is Outcome.ACCEPTED
    assert cache.snapshot().usable[0, 0]


def test_snapshot_is_a_copy() -> None:
    cache = make()
    cache.apply(0, 0, q("1", "2"), 1)
    snap = cache.snapshot()
    cache.apply(0, 0, q("1.5", "2"), 2)
    assert snap.bid[0, 0] == 1.0
    assert not np.shares_memory(snap.bid, cache.bid)


def test_stats_count_outcomes() -> None:
    stats = VenueStats()
    for outcome in Outcome:
        stats.count(outcome)
    counts = (stats.updates, stats.dropped_stale, stats.dropped_crossed, stats.dropped_invalid)
    assert counts == (1, 1, 1, 1)
    assert stats.repeats == 1


def test_a_size_that_passes_the_screen_but_is_no_number_makes_the_quote_unusable() -> None:
    cache = make()
    assert cache.apply(0, 0, q("1", "2", bq="1.2.3"), 1) is Outcome.ACCEPTED  # screened only
    assert cache.apply(0, 1, q("1", "2", aq="1e999"), 1) is Outcome.ACCEPTED  # overflows to inf
    snap = cache.snapshot()
    assert not snap.usable[0, 0] and not snap.usable[0, 1]
    assert cache.stats["mexc"].dropped_invalid == 2
    assert cache.apply(0, 0, q("1", "2", bq="4.5", seq=-1), 2) is Outcome.ACCEPTED
    snap = cache.snapshot()
    assert snap.usable[0, 0] and snap.bid_qty[0, 0] == 4.5
    assert cache.stats["mexc"].dropped_invalid == 2  # counted once, not on every snapshot
