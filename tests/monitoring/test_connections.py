"""The periodic connection_status line, from a hand-built collector view."""

from __future__ import annotations

import pytest

from data_collector.cache import VenueStats
from data_collector.monitoring.connections import ConnectionStatusLog
from tests.helpers import Log, events
from tests.monitoring.helpers import Clock, sources


def test_connection_status_rates_from_deltas(logs: Log) -> None:
    t0 = 1_700_000_000 * 10**9
    clock = Clock(t0)
    mexc = VenueStats(updates=100, reconnects=2, parse_errors=3, last_message_ns=t0 - 10**8)
    mexc.dropped_stale, mexc.dropped_crossed, mexc.dropped_invalid = 1, 2, 3
    mexc.dropped_unknown = 4
    stats = {"mexc": mexc, "gateio": VenueStats(reconnects=1)}
    connections = {"mexc": (2, 2), "gateio": (0, 1)}
    view = sources(stats, connections, clock=clock)
    log = ConnectionStatusLog()

    log.report(view.read())
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
    clock.now_ns = t0 + 30 * 10**9
    log.report(view.read())
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
        "[CONNECTION] GATEIO: 0/1 connection up, 0 updates/min, 1 reconnect, no message yet"
    )


def test_a_counter_that_went_backwards_gives_no_rate(logs: Log) -> None:
    clock = Clock()
    stats = {"mexc": VenueStats(updates=500, last_message_ns=clock.now_ns)}
    view = sources(stats, {"mexc": (1, 1)}, clock=clock)
    log = ConnectionStatusLog()
    log.report(view.read())
    stats["mexc"].updates = 100  # a restarted counter
    clock.now_ns += 10**10
    log.report(view.read())
    stats["mexc"].updates = 160
    clock.now_ns += 30 * 10**9
    log.report(view.read())
    rates = [e["updates_per_min"] for e in events(logs, "connection_status")]
    assert rates == [None, None, pytest.approx(120.0)]


def test_failed_attempts_and_silent_pairs_are_told(logs: Log) -> None:
    """No network: twelve attempts, all failed, none a reconnect; one silent pair elsewhere."""
    mexc = VenueStats(connection_attempts=12, connection_failures=12)
    binance = VenueStats(updates=50, connection_attempts=1, last_message_ns=Clock().now_ns)
    view = sources(
        {"mexc": mexc, "binance": binance},
        {"mexc": (0, 2), "binance": (1, 1)},
        silent_pairs={"binance": ["FOOUSDT"]},
    )
    ConnectionStatusLog().report(view.read())
    status = {e["exchange"]: e for e in events(logs, "connection_status")}
    assert status["mexc"]["summary"] == (
        "[CONNECTION] MEXC: 0/2 connections up, n/a updates/min, 0 reconnects "
        "(12 connection attempts, 12 failed), no message yet"
    )
    assert (status["mexc"]["connection_attempts"], status["mexc"]["connection_failures"]) == (
        12,
        12,
    )
    assert status["binance"]["silent_pairs"] == 1
    assert status["binance"]["summary"].endswith("last message 0.0s ago, 1 silent pair")
