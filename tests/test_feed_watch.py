"""FeedWatch against the simulator over loopback: a pair that stops quoting while its
connection delivers others is reported once, and again when it resumes; a venue out of reach
gets calm "waiting for" lines with the attempt, the next try and the error, and the start-up
line says what is missing."""

from __future__ import annotations

import socket

from data_collector.cache import QuoteCache
from data_collector.connection import ConnectionSettings
from data_collector.feed_watch import FeedWatch, log_subscriptions
from data_collector.manager import FeedManager
from data_collector.pairs import Pair
from data_collector.simulator import Simulator, pairs_for
from data_collector.venues import get_venue
from tests.helpers import Log, events, feeds, wait_until

SETTINGS = ConnectionSettings(
    silence_timeout=5.0,
    pong_timeout=3.0,
    subscribe_timeout=5.0,
    reconnect_initial_delay=0.05,
    reconnect_max_delay=0.2,
    max_reconnects_per_minute=600,
)


def _symbol(manager: FeedManager, venue: str, pair: Pair) -> str:
    return manager.venue_feeds[venue].venue.symbol(pair)


async def _checked(watch: FeedWatch, until: object, what: str, timeout: float = 10.0) -> None:
    """Run the watch's check (as its task would, off the hot path) until ``until()``."""

    def step() -> object:
        watch.check()
        return until()  # type: ignore[operator]

    await wait_until(step, timeout=timeout, interval=0.1, what=what)


async def test_a_pair_that_stops_quoting_is_reported_once_then_resumes(logs: Log) -> None:
    pairs = pairs_for(4)
    quiet = pairs[2]
    async with Simulator(pairs, rate_hz=20) as sim, feeds(sim, pairs, SETTINGS) as manager:
        await wait_until(manager.flowing, what="feeds flowing")
        watch = FeedWatch(manager, pair_silence_timeout=1.0)
        watch.check()
        assert watch.silent_pairs() == {"mexc": [], "gateio": []}
        gate = sim.venues["gateio"]
        gate.set_quote(quiet, "10.0", "1", "10.1", "1", hold=True)  # one push, then nothing
        await _checked(watch, lambda: events(logs, "pair_silent"), "the silent pair")
        symbol = _symbol(manager, "gateio", quiet)
        [silent] = events(logs, "pair_silent")
        assert (silent["exchange"], silent["symbol"], silent["pair"]) == (
            "gateio",
            symbol,
            str(quiet),
        )
        assert silent["log_level"] == "warning" and silent["silent_s"] >= 1.0
        assert watch.silent_pairs() == {"mexc": [], "gateio": [symbol]}
        for _ in range(5):  # reported once, not on every check
            watch.check()
        assert len(events(logs, "pair_silent")) == 1
        gate.release(quiet)
        await _checked(watch, lambda: events(logs, "pair_resumed"), "the pair resuming")
        [resumed] = events(logs, "pair_resumed")
        assert (resumed["exchange"], resumed["symbol"], resumed["pair"]) == (
            "gateio",
            symbol,
            str(quiet),
        )
        assert resumed["silent_s"] >= 1.0
        assert watch.silent_pairs() == {"mexc": [], "gateio": []}


async def test_a_link_that_delivers_nothing_has_no_silent_pairs(logs: Log) -> None:
    """A whole connection gone quiet is the connection's problem (silence timeout), not its
    pairs': no pair_silent for any of them."""
    pairs = pairs_for(2)
    async with Simulator(pairs, rate_hz=20) as sim, feeds(sim, pairs, SETTINGS) as manager:
        await wait_until(manager.flowing, what="feeds flowing")
        watch = FeedWatch(manager, pair_silence_timeout=0.5)
        for pair in pairs:
            sim.venues["mexc"].set_quote(pair, "10.0", "1", "10.1", "1", hold=True)
        gate_seen = manager.cache.stats["gateio"].updates
        await _checked(
            watch,
            lambda: manager.cache.stats["gateio"].updates > gate_seen + 40,
            "a second of gateio quotes",
        )
        assert events(logs, "pair_silent") == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_an_unreachable_venue_is_waited_for_calmly_and_greeted_back(logs: Log) -> None:
    pairs = pairs_for(3)
    port = _closed_port()
    cache = QuoteCache(["mexc"], pairs)
    venues = {"mexc": (get_venue("mexc"), f"ws://127.0.0.1:{port}/ws")}
    manager = FeedManager(cache, venues, pairs, SETTINGS)
    watch = FeedWatch(manager, pair_silence_timeout=120, waiting_every=0.5)
    await manager.start()
    try:
        stats = cache.stats["mexc"]
        await wait_until(lambda: stats.connection_failures, what="a failed attempt")
        watch.check()  # the link's own warning has just spoken: no line yet
        assert events(logs, "waiting_for_venue") == []
        await _checked(watch, lambda: events(logs, "waiting_for_venue"), "a waiting line")
        for _ in range(3):
            watch.check()
        [waiting] = events(logs, "waiting_for_venue")  # one line, though attempts go on
        assert waiting["exchange"] == "mexc" and waiting["log_level"] == "warning"
        assert waiting["attempt"] >= 1 and "ConnectionRefusedError" in waiting["error"]
        assert waiting["summary"].startswith(
            f"Waiting for venues: MEXC unreachable (attempt {waiting['attempt']}, "
        )
        await _checked(watch, lambda: len(events(logs, "waiting_for_venue")) == 2, "the next")
        assert stats.connection_attempts == stats.connection_failures and stats.reconnects == 0
        assert len(events(logs, "connection_failed", log_level="warning")) == 1
        log_subscriptions(manager)
        [report] = events(logs, "subscriptions_ready")
        assert report["log_level"] == "warning" and (report["channels"], report["expected"]) == (
            0,
            3,
        )
        assert report["summary"].startswith(
            "Subscribed to 0 of 3 book ticker channels; missing: mexc 3 (unreachable: "
            "ConnectionRefusedError"
        )
        async with Simulator(pairs, venues=["mexc"], ports={"mexc": port}):
            await _checked(watch, lambda: events(logs, "venue_reachable"), "the venue back")
            await wait_until(manager.flowing, what="feeds flowing")
            logs.clear()
            log_subscriptions(manager)
            [report] = events(logs, "subscriptions_ready")
            assert report["log_level"] == "info" and report["missing"] == {}
            assert report["summary"] == "Subscribed to 3 of 3 book ticker channels"
    finally:
        await manager.stop()


async def test_the_startup_line_says_a_reason_shared_by_venues_once(logs: Log) -> None:
    pairs = pairs_for(2)
    port = _closed_port()  # both venues fail alike
    cache = QuoteCache(["mexc", "okx"], pairs)
    venues = {
        "mexc": (get_venue("mexc"), f"ws://127.0.0.1:{port}/ws"),
        "okx": (get_venue("okx"), f"ws://127.0.0.1:{port}/ws/v5/public"),
    }
    manager = FeedManager(cache, venues, pairs, SETTINGS)
    await manager.start()
    try:
        await wait_until(
            lambda: all(s.connection_failures for s in cache.stats.values()), what="failures"
        )
        log_subscriptions(manager)
    finally:
        await manager.stop()
    [report] = events(logs, "subscriptions_ready")
    error = f"ConnectionRefusedError: [Errno 111] Connect call failed ('127.0.0.1', {port})"
    assert report["missing"] == {
        "mexc": f"2 (unreachable: {error})",
        "okx": f"2 (unreachable: {error})",
    }
    assert report["summary"] == (
        f"Subscribed to 0 of 4 book ticker channels; missing: mexc 2, okx 2 (unreachable: {error})"
    )
