"""/metrics families from a hand-built collector view, and the per-tick histograms."""

from __future__ import annotations

import pytest

from data_collector.cache import QuoteCache, VenueStats
from data_collector.monitoring.metrics import Metrics
from data_collector.pairs import Pair
from data_collector.scheduler import TickStats
from data_collector.venues.base import QuoteUpdate
from db.writer import WriterStats
from tests.monitoring.helpers import NOW_NS, sample, sources

BTC, ETH = Pair("BTC", "USDT"), Pair("ETH", "USDT")


def test_counters_and_gauges_are_read_from_the_status_at_scrape_time() -> None:
    mexc = VenueStats(frames=10, updates=7, parse_errors=1, reconnects=6, dropped_stale=2)
    mexc.dropped_crossed, mexc.dropped_invalid, mexc.dropped_unknown = 3, 4, 5
    mexc.repeats, mexc.connection_attempts, mexc.connection_failures = 8, 19, 12
    stats = {"mexc": mexc, "gateio": VenueStats(frames=3)}
    ticks = TickStats()
    ticks.ticks, ticks.missed, ticks.rows = 12, 1, 33
    writer = WriterStats(rows_written=30, rows_spilled=3, backlog_rows=5)
    connections = {"mexc": (2, 2), "gateio": (0, 1)}
    view = sources(
        stats,
        connections,
        ticks=ticks,
        database=writer,
        open_opportunities=4,
        silent_pairs={"mexc": ["FOOUSDT", "BARUSDT"]},
    )
    metrics = Metrics(view.read, view.venues)
    text = metrics.exposition().decode()
    assert (
        "# HELP collector_frames_total WebSocket frames received\n"
        "# TYPE collector_frames_total counter\n"
        'collector_frames_total{exchange="mexc"} 10.0\n'
        'collector_frames_total{exchange="gateio"} 3.0\n'
    ) in text
    assert sample(text, "collector_updates_total", exchange="mexc") == 7
    assert sample(text, "collector_parse_errors_total", exchange="mexc") == 1
    assert sample(text, "collector_reconnects_total", exchange="mexc") == 6
    dropped = {
        reason: sample(text, "collector_dropped_updates_total", exchange="mexc", reason=reason)
        for reason in ("out_of_order", "crossed", "invalid", "unknown_symbol", "repeat")
    }
    assert dropped == {
        "out_of_order": 2,
        "crossed": 3,
        "invalid": 4,
        "unknown_symbol": 5,
        "repeat": 8,
    }
    assert sample(text, "collector_connection_attempts_total", exchange="mexc") == 19
    assert sample(text, "collector_connection_failures_total", exchange="mexc") == 12
    assert sample(text, "collector_pairs_silent", exchange="mexc") == 2
    assert sample(text, "collector_pairs_silent", exchange="gateio") == 0
    assert sample(text, "collector_connections_up", exchange="mexc") == 2
    assert sample(text, "collector_connections_up", exchange="gateio") == 0
    assert sample(text, "collector_snapshots_total") == 12
    assert sample(text, "collector_snapshots_missed_total") == 1
    assert sample(text, "collector_snapshot_rows_total") == 33
    assert sample(text, "collector_writer_backlog_rows") == 5
    assert sample(text, "collector_rows_written_total") == 30
    assert sample(text, "collector_rows_spilled_total") == 3
    assert sample(text, "collector_arbitrage_opportunities_open") == 4
    mexc.frames = 11  # read again on the next scrape
    assert sample(metrics.exposition().decode(), "collector_frames_total", exchange="mexc") == 11


def test_a_dry_run_shows_no_writer_backlog() -> None:
    view = sources({"mexc": VenueStats()}, {"mexc": (1, 1)})
    text = Metrics(view.read, view.venues).exposition().decode()
    assert sample(text, "collector_writer_backlog_rows") == 0
    assert sample(text, "collector_rows_written_total") == 0


def test_quote_ages_count_each_fresh_quote_once_per_tick() -> None:
    cache = QuoteCache(["mexc", "gateio"], [BTC, ETH])

    def quote(v: int, p: int, seq: int, age_ms: int, exchange_ms: int | None = None) -> None:
        """Received at NOW_NS + seq ms, sent ``age_ms`` before that."""
        received = NOW_NS + seq * 10**6
        sent = received // 10**6 - age_ms if exchange_ms is None else exchange_ms
        cache.apply(v, p, QuoteUpdate("s", "1", "1", "2", "1", sent, seq), received)

    quote(0, 0, 1, 3)  # 3 ms: the 0.005 bucket
    quote(0, 1, 1, -40)  # the venue's clock ahead of ours: counted as 0
    quote(1, 0, 1, 700)  # 0.7 s
    quote(1, 1, 1, 0, exchange_ms=0)  # no exchange time: not counted
    view = sources(cache.stats, {"mexc": (1, 1), "gateio": (1, 1)})
    metrics = Metrics(view.read, view.venues)
    ticks = TickStats()
    ticks.last_duration_s = 0.002
    metrics.after_tick(cache.snapshot(), ticks)
    metrics.after_tick(cache.snapshot(), ticks)  # nothing changed: no new samples
    text = metrics.exposition().decode()

    def bucket(venue: str, le: str) -> float:
        return sample(text, "collector_quote_age_seconds_bucket", exchange=venue, le=le)

    assert sample(text, "collector_quote_age_seconds_count", exchange="mexc") == 2
    assert (bucket("mexc", "0.001"), bucket("mexc", "0.005")) == (1, 2)
    mexc_sum = sample(text, "collector_quote_age_seconds_sum", exchange="mexc")
    assert mexc_sum == pytest.approx(0.003, abs=1e-6)  # float seconds since 1970
    assert sample(text, "collector_quote_age_seconds_count", exchange="gateio") == 1
    assert (bucket("gateio", "0.5"), bucket("gateio", "1.0")) == (0, 1)
    assert sample(text, "collector_snapshot_duration_seconds_count") == 2
    assert sample(text, "collector_snapshot_duration_seconds_sum") == 0.004
    quote(1, 0, 2, 20)  # a fresh update: counted on the next tick
    metrics.after_tick(cache.snapshot(), ticks)
    text = metrics.exposition().decode()
    assert sample(text, "collector_quote_age_seconds_count", exchange="gateio") == 2
    assert sample(text, "collector_quote_age_seconds_count", exchange="mexc") == 2


def test_alert_counters_are_labelled_by_target_scheme() -> None:
    from dataclasses import replace

    from data_collector.alerts.service import AlertCounters

    view = sources({}, {})
    counters = AlertCounters(
        sent={"tgram": 5, "json": 2}, failed={"tgram": 1, "json": 0}, dropped=3
    )
    text = Metrics(replace(view, alerts=lambda: counters).read, ()).exposition().decode()
    assert sample(text, "collector_alerts_sent_total", target="tgram") == 5
    assert sample(text, "collector_alerts_failed_total", target="tgram") == 1
    assert sample(text, "collector_alerts_sent_total", target="json") == 2
    assert sample(text, "collector_alerts_dropped_total") == 3
    quiet = Metrics(view.read, ()).exposition().decode()  # no targets: zero dropped, no series
    assert sample(quiet, "collector_alerts_dropped_total") == 0
    assert "collector_alerts_sent_total{" not in quiet
